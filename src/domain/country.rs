//! Football nations by FIFA trigram. ISO 3166 has no codes for England, Scotland, Wales or
//! Northern Ireland, which play as separate nations; FIFA's three-letter codes do.
//!
//! The list is the 211 FIFA member associations. It is fixed on purpose: a new member is a
//! code change with a test, not data.

use std::fmt;

/// `(code, name)` for every accepted nation, sorted by code.
pub const NATIONS: &[(&str, &str)] = &[
    ("AFG", "Afghanistan"),
    ("AIA", "Anguilla"),
    ("ALB", "Albania"),
    ("ALG", "Algeria"),
    ("AND", "Andorra"),
    ("ANG", "Angola"),
    ("ARG", "Argentina"),
    ("ARM", "Armenia"),
    ("ARU", "Aruba"),
    ("ASA", "American Samoa"),
    ("ATG", "Antigua and Barbuda"),
    ("AUS", "Australia"),
    ("AUT", "Austria"),
    ("AZE", "Azerbaijan"),
    ("BAH", "Bahamas"),
    ("BAN", "Bangladesh"),
    ("BDI", "Burundi"),
    ("BEL", "Belgium"),
    ("BEN", "Benin"),
    ("BER", "Bermuda"),
    ("BFA", "Burkina Faso"),
    ("BHR", "Bahrain"),
    ("BHU", "Bhutan"),
    ("BIH", "Bosnia and Herzegovina"),
    ("BLR", "Belarus"),
    ("BLZ", "Belize"),
    ("BOL", "Bolivia"),
    ("BOT", "Botswana"),
    ("BRA", "Brazil"),
    ("BRB", "Barbados"),
    ("BRU", "Brunei Darussalam"),
    ("BUL", "Bulgaria"),
    ("CAM", "Cambodia"),
    ("CAN", "Canada"),
    ("CAY", "Cayman Islands"),
    ("CGO", "Congo"),
    ("CHA", "Chad"),
    ("CHI", "Chile"),
    ("CHN", "China PR"),
    ("CIV", "Côte d'Ivoire"),
    ("CMR", "Cameroon"),
    ("COD", "Congo DR"),
    ("COK", "Cook Islands"),
    ("COL", "Colombia"),
    ("COM", "Comoros"),
    ("CPV", "Cabo Verde"),
    ("CRC", "Costa Rica"),
    ("CRO", "Croatia"),
    ("CTA", "Central African Republic"),
    ("CUB", "Cuba"),
    ("CUW", "Curaçao"),
    ("CYP", "Cyprus"),
    ("CZE", "Czechia"),
    ("DEN", "Denmark"),
    ("DJI", "Djibouti"),
    ("DMA", "Dominica"),
    ("DOM", "Dominican Republic"),
    ("ECU", "Ecuador"),
    ("EGY", "Egypt"),
    ("ENG", "England"),
    ("EQG", "Equatorial Guinea"),
    ("ERI", "Eritrea"),
    ("ESP", "Spain"),
    ("EST", "Estonia"),
    ("ETH", "Ethiopia"),
    ("FIJ", "Fiji"),
    ("FIN", "Finland"),
    ("FRA", "France"),
    ("FRO", "Faroe Islands"),
    ("GAB", "Gabon"),
    ("GAM", "Gambia"),
    ("GEO", "Georgia"),
    ("GER", "Germany"),
    ("GHA", "Ghana"),
    ("GIB", "Gibraltar"),
    ("GNB", "Guinea-Bissau"),
    ("GRE", "Greece"),
    ("GRN", "Grenada"),
    ("GUA", "Guatemala"),
    ("GUI", "Guinea"),
    ("GUM", "Guam"),
    ("GUY", "Guyana"),
    ("HAI", "Haiti"),
    ("HKG", "Hong Kong, China"),
    ("HON", "Honduras"),
    ("HUN", "Hungary"),
    ("IDN", "Indonesia"),
    ("IND", "India"),
    ("IRL", "Republic of Ireland"),
    ("IRN", "IR Iran"),
    ("IRQ", "Iraq"),
    ("ISL", "Iceland"),
    ("ISR", "Israel"),
    ("ITA", "Italy"),
    ("JAM", "Jamaica"),
    ("JOR", "Jordan"),
    ("JPN", "Japan"),
    ("KAZ", "Kazakhstan"),
    ("KEN", "Kenya"),
    ("KGZ", "Kyrgyz Republic"),
    ("KOR", "Korea Republic"),
    ("KSA", "Saudi Arabia"),
    ("KUW", "Kuwait"),
    ("KVX", "Kosovo"),
    ("LAO", "Laos"),
    ("LBR", "Liberia"),
    ("LBY", "Libya"),
    ("LCA", "Saint Lucia"),
    ("LES", "Lesotho"),
    ("LIB", "Lebanon"),
    ("LIE", "Liechtenstein"),
    ("LTU", "Lithuania"),
    ("LUX", "Luxembourg"),
    ("LVA", "Latvia"),
    ("MAC", "Macau"),
    ("MAD", "Madagascar"),
    ("MAR", "Morocco"),
    ("MAS", "Malaysia"),
    ("MDA", "Moldova"),
    ("MDV", "Maldives"),
    ("MEX", "Mexico"),
    ("MKD", "North Macedonia"),
    ("MLI", "Mali"),
    ("MLT", "Malta"),
    ("MNE", "Montenegro"),
    ("MNG", "Mongolia"),
    ("MOZ", "Mozambique"),
    ("MRI", "Mauritius"),
    ("MSR", "Montserrat"),
    ("MTN", "Mauritania"),
    ("MWI", "Malawi"),
    ("MYA", "Myanmar"),
    ("NAM", "Namibia"),
    ("NCA", "Nicaragua"),
    ("NCL", "New Caledonia"),
    ("NED", "Netherlands"),
    ("NEP", "Nepal"),
    ("NGA", "Nigeria"),
    ("NIG", "Niger"),
    ("NIR", "Northern Ireland"),
    ("NOR", "Norway"),
    ("NZL", "New Zealand"),
    ("OMA", "Oman"),
    ("PAK", "Pakistan"),
    ("PAN", "Panama"),
    ("PAR", "Paraguay"),
    ("PER", "Peru"),
    ("PHI", "Philippines"),
    ("PLE", "Palestine"),
    ("PNG", "Papua New Guinea"),
    ("POL", "Poland"),
    ("POR", "Portugal"),
    ("PRK", "Korea DPR"),
    ("PUR", "Puerto Rico"),
    ("QAT", "Qatar"),
    ("ROU", "Romania"),
    ("RSA", "South Africa"),
    ("RUS", "Russia"),
    ("RWA", "Rwanda"),
    ("SAM", "Samoa"),
    ("SCO", "Scotland"),
    ("SDN", "Sudan"),
    ("SEN", "Senegal"),
    ("SEY", "Seychelles"),
    ("SGP", "Singapore"),
    ("SKN", "St Kitts and Nevis"),
    ("SLE", "Sierra Leone"),
    ("SLV", "El Salvador"),
    ("SMR", "San Marino"),
    ("SOL", "Solomon Islands"),
    ("SOM", "Somalia"),
    ("SRB", "Serbia"),
    ("SRI", "Sri Lanka"),
    ("SSD", "South Sudan"),
    ("STP", "São Tomé and Príncipe"),
    ("SUI", "Switzerland"),
    ("SUR", "Suriname"),
    ("SVK", "Slovakia"),
    ("SVN", "Slovenia"),
    ("SWE", "Sweden"),
    ("SWZ", "Eswatini"),
    ("SYR", "Syria"),
    ("TAH", "Tahiti"),
    ("TAN", "Tanzania"),
    ("TCA", "Turks and Caicos Islands"),
    ("TGA", "Tonga"),
    ("THA", "Thailand"),
    ("TJK", "Tajikistan"),
    ("TKM", "Turkmenistan"),
    ("TLS", "Timor-Leste"),
    ("TOG", "Togo"),
    ("TPE", "Chinese Taipei"),
    ("TRI", "Trinidad and Tobago"),
    ("TUN", "Tunisia"),
    ("TUR", "Türkiye"),
    ("UAE", "United Arab Emirates"),
    ("UGA", "Uganda"),
    ("UKR", "Ukraine"),
    ("URU", "Uruguay"),
    ("USA", "USA"),
    ("UZB", "Uzbekistan"),
    ("VAN", "Vanuatu"),
    ("VEN", "Venezuela"),
    ("VGB", "British Virgin Islands"),
    ("VIE", "Vietnam"),
    ("VIN", "St Vincent and the Grenadines"),
    ("VIR", "US Virgin Islands"),
    ("WAL", "Wales"),
    ("YEM", "Yemen"),
    ("ZAM", "Zambia"),
    ("ZIM", "Zimbabwe"),
];

/// A FIFA nation code, always upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Country(&'static str);

impl Country {
    /// Accepts any case (`eng`, `Eng`, `ENG`).
    pub fn parse(s: &str) -> Option<Country> {
        if s.len() != 3 {
            return None;
        }
        let upper = s.to_ascii_uppercase();
        NATIONS
            .binary_search_by(|(code, _)| (*code).cmp(upper.as_str()))
            .ok()
            .map(|i| Country(NATIONS[i].0))
    }

    pub fn code(&self) -> &'static str {
        self.0
    }

    /// The JSON Schema `pattern` of exactly what `parse` accepts: a code of `NATIONS` in any
    /// case, each letter as a two-case class (`[Ee][Nn][Gg]`), so no regex flag is needed.
    pub fn pattern() -> String {
        let codes: Vec<String> = NATIONS
            .iter()
            .map(|(code, _)| {
                code.chars()
                    .map(|c| format!("[{c}{}]", c.to_ascii_lowercase()))
                    .collect()
            })
            .collect();
        format!("^(?:{})$", codes.join("|"))
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_unique_and_complete() {
        assert!(
            NATIONS.windows(2).all(|w| w[0].0 < w[1].0),
            "NATIONS must be sorted"
        );
        assert_eq!(NATIONS.len(), 211, "FIFA has 211 member associations");
    }

    #[test]
    fn home_nations_exist_and_case_is_normalised() {
        for code in ["ENG", "sco", "Wal", "nir"] {
            let c = Country::parse(code).expect(code);
            assert_eq!(c.code(), code.to_ascii_uppercase());
        }
    }

    #[test]
    fn unknown_or_iso_only_codes_are_rejected() {
        for code in ["GBR", "DEU", "XXX", "", "EN", "ENGL", "ÉNG"] {
            assert_eq!(Country::parse(code), None, "{code}");
        }
    }
}
